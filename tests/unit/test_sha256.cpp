// SHA-256 and HMAC-SHA-256 (util/sha256.hpp) against published vectors.
//
// SHA-256: the examples of NIST FIPS 180-2 ("abc", the 448-bit message),
// NIST's long messages (the 896-bit one, one million 'a'), the empty
// string and lengths around the padding boundaries. HMAC-SHA-256: RFC
// 4231, test cases 1 to 7.
#include <string>
#include <string_view>

#include "util/sha256.hpp"
#include "unit_test.hpp"

namespace {

void test_sha256_vectors(void**) {
  assert_str_eq(ptv::sha256_hex(""),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_str_eq(ptv::sha256_hex("abc"),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_str_eq(
      ptv::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  assert_str_eq(
      ptv::sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                      "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  assert_str_eq(ptv::sha256_hex(std::string(1000, 'a')),
                "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
  assert_str_eq(ptv::sha256_hex(std::string(1000000, 'a')),
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the 55/56/64-byte padding boundaries.
  assert_str_eq(ptv::sha256_hex(std::string(55, 'a')),
                "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  assert_str_eq(ptv::sha256_hex(std::string(56, 'a')),
                "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  assert_str_eq(ptv::sha256_hex(std::string(64, 'a')),
                "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

// The same digest whatever pieces the data comes in.
void test_sha256_in_pieces(void**) {
  const std::string million(1000000, 'a');
  const ptv::Sha256Digest whole = ptv::Sha256().update(million).finish();
  for (std::size_t piece : {1, 3, 55, 63, 64, 65, 1000, 65537}) {
    ptv::Sha256 sha;
    for (std::size_t at = 0; at < million.size(); at += piece)
      sha.update(std::string_view(million).substr(at, piece));
    assert_true(sha.finish() == whole);
  }
  ptv::Sha256 sha;
  sha.update("ab").update("").update("c");
  const ptv::Sha256Digest abc = ptv::Sha256().update("abc").finish();
  assert_true(sha.finish() == abc);
}

// RFC 4231, test cases 1 to 7 (case 5 is truncated to 128 bits).
void test_hmac_sha256_rfc4231_vectors(void**) {
  using ptv::hmac_sha256_hex;
  assert_str_eq(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There"),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  assert_str_eq(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  assert_str_eq(hmac_sha256_hex(std::string(20, '\xaa'), std::string(50, '\xdd')),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  std::string key4;
  for (int i = 1; i <= 25; ++i) key4.push_back(static_cast<char>(i));
  assert_str_eq(hmac_sha256_hex(key4, std::string(50, '\xcd')),
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  assert_str_eq(
      hmac_sha256_hex(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32),
      "a3b6167473100ee06e0c796c2955552b");
  assert_str_eq(hmac_sha256_hex(std::string(131, '\xaa'),
                                "Test Using Larger Than Block-Size Key - Hash Key First"),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  assert_str_eq(
      hmac_sha256_hex(std::string(131, '\xaa'),
                      "This is a test using a larger than block-size key and a "
                      "larger than block-size data. The key needs to be hashed "
                      "before being used by the HMAC algorithm."),
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// The parts of an HMAC (as the state file's tags give them: a label, a
// NUL, a name) are the message they make together.
void test_hmac_sha256_parts_concatenated(void**) {
  const std::string key(32, '\x42');
  const ptv::Sha256Digest parts =
      ptv::hmac_sha256(key, {"account", {"\0", 1}, "alice"});
  const ptv::Sha256Digest whole =
      ptv::hmac_sha256(key, {std::string_view("account\0alice", 13)});
  assert_true(parts == whole);
  const ptv::Sha256Digest other =
      ptv::hmac_sha256(key, {"account", {"\0", 1}, "alicf"});
  assert_false(parts == other);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_vectors),
      cmocka_unit_test(test_sha256_in_pieces),
      cmocka_unit_test(test_hmac_sha256_rfc4231_vectors),
      cmocka_unit_test(test_hmac_sha256_parts_concatenated),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
