# The libraries the module, the helper and the tests build against (pkg-config
# imported targets PkgConfig::PAM, ::CURL, ::JSONC, ::LIBCONFIG, ::LDAP):
# included by the top-level CMakeLists.txt and by tests/fuzz/CMakeLists.txt
# when that is configured on its own.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PAM REQUIRED IMPORTED_TARGET pam)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl>=7.85)
pkg_check_modules(JSONC REQUIRED IMPORTED_TARGET json-c)
pkg_check_modules(LIBCONFIG REQUIRED IMPORTED_TARGET libconfig)
pkg_check_modules(LDAP REQUIRED IMPORTED_TARGET ldap lber)
