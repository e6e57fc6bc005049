#include "admin/pam_stack.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "util/log.hpp"

namespace ptv::admin {

namespace {

constexpr int kMaxDepth = 16;  // Linux-PAM's own limit on nesting

// The lines of a file, comments removed and continuations joined.
std::vector<std::string> logical_lines(std::istream& in) {
  std::vector<std::string> lines;
  std::string line, pending;
  while (std::getline(in, line)) {
    if (const auto hash = line.find('#'); hash != std::string::npos)
      line.erase(hash);
    if (!line.empty() && line.back() == '\\') {
      pending += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    lines.push_back(pending + line);
    pending.clear();
  }
  if (!pending.empty()) lines.push_back(pending);
  return lines;
}

// Words, with [ ... ] (a control or an argument) kept as one.
std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) {
    if (!out.empty() && out.back().front() == '[' && out.back().back() != ']')
      out.back() += " " + w;
    else
      out.push_back(w);
  }
  return out;
}

std::string basename_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

ModuleUse module_use(const std::vector<std::string>& w,
                     const std::vector<std::string>& via) {
  ModuleUse use{via, {}, {}};
  for (std::size_t i = 3; i < w.size(); ++i) {
    if (w[i].starts_with("conf=")) use.conf = w[i].substr(5);
    if (w[i].starts_with("helper=")) use.helper = w[i].substr(7);
  }
  return use;
}

class Scanner {
 public:
  explicit Scanner(std::string dir) : dir_(std::move(dir)) {}
  PamScan scan_all();

 private:
  void walk(const std::string& file, std::vector<std::string> via, int depth,
            std::vector<ModuleUse>& uses);
  void follow(const std::string& file, const std::vector<std::string>& via,
              int depth, std::vector<ModuleUse>& uses);
  void line(const std::vector<std::string>& w, const std::vector<std::string>& via,
            int depth, std::vector<ModuleUse>& uses);
  std::string path_of(const std::string& name) const {
    return name.starts_with("/") ? name : dir_ + "/" + name;
  }
  std::string dir_;
  PamScan scan_;
  std::set<std::string> included_;
  std::set<std::string> missing_;
};

void Scanner::follow(const std::string& file, const std::vector<std::string>& via,
                     int depth, std::vector<ModuleUse>& uses) {
  included_.insert(basename_of(file));
  std::vector<std::string> next = via;
  next.push_back(basename_of(file));
  walk(file, next, depth + 1, uses);
}

void Scanner::line(const std::vector<std::string>& w,
                   const std::vector<std::string>& via, int depth,
                   std::vector<ModuleUse>& uses) {
  if (w.empty()) return;
  if (w[0] == "@include") {
    if (w.size() > 1) follow(w[1], via, depth, uses);
    return;
  }
  std::string type = w[0];
  if (type.starts_with("-")) type.erase(0, 1);
  if (type != "auth" || w.size() < 3) return;
  if (w[1] == "include" || w[1] == "substack") {
    follow(w[2], via, depth, uses);
    return;
  }
  if (basename_of(w[2]) == kModuleFile) uses.push_back(module_use(w, via));
}

void Scanner::walk(const std::string& file, std::vector<std::string> via,
                   int depth, std::vector<ModuleUse>& uses) {
  if (depth > kMaxDepth) return;
  std::ifstream in(path_of(file));
  if (!in) {
    if (depth > 0 && missing_.insert(file).second)
      scan_.problems.push_back("pam: " + log_safe(path_of(file), 200) +
                               " is included but cannot be read");
    return;
  }
  for (const std::string& l : logical_lines(in)) line(words(l), via, depth, uses);
}

PamScan Scanner::scan_all() {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir_.c_str())) {
    while (const dirent* e = readdir(d)) {
      struct stat st {};
      const std::string name = e->d_name;
      if (name.starts_with(".") || stat(path_of(name).c_str(), &st) != 0 ||
          !S_ISREG(st.st_mode))
        continue;
      names.push_back(name);
    }
    closedir(d);
  } else {
    scan_.problems.push_back("pam: cannot read the directory " + log_safe(dir_, 200));
  }
  std::sort(names.begin(), names.end());
  std::vector<ServiceStack> all;
  for (const std::string& name : names) {
    ServiceStack stack{name, {}};
    walk(name, {}, 0, stack.uses);
    if (!stack.uses.empty()) all.push_back(std::move(stack));
  }
  for (ServiceStack& s : all)
    if (!included_.contains(s.service)) scan_.services.push_back(std::move(s));
  scan_.included.assign(included_.begin(), included_.end());
  return std::move(scan_);
}

}  // namespace

PamScan scan_pam_dir(const std::string& pam_dir) {
  return Scanner(pam_dir).scan_all();
}

}  // namespace ptv::admin
