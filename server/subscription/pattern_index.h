// Which subscribers does an event's stream concern? A token trie over stream patterns, as
// NATS's sublist: an event costs a walk down its stream's tokens, not a check per subscriber,
// so ten thousand single-stream subscribers cost one lookup per token, not ten thousand tests.
//
// Not thread-safe: the hub guards it with its lock. Values are not owned.
#ifndef HOOKSTREAM_SERVER_SUBSCRIPTION_PATTERN_INDEX_H_
#define HOOKSTREAM_SERVER_SUBSCRIPTION_PATTERN_INDEX_H_

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/common/names.h"

namespace hookstream::subscription {

template <typename T>
class PatternIndex {
 public:
  // Indexes `value` under `pattern`; an empty pattern list means "every stream".
  void Add(const std::vector<StreamPattern>& patterns, T* value) {
    if (patterns.empty()) {
      all_.push_back(value);
      return;
    }
    for (const StreamPattern& p : patterns) {
      Node* n = &root_;
      for (const std::string& t : p.tokens()) {
        std::unique_ptr<Node>& child = t == "*" ? n->star : n->children[t];
        if (child == nullptr) child = std::make_unique<Node>();
        n = child.get();
      }
      (p.has_tail_wildcard() ? n->tail : n->here).push_back(value);
    }
  }

  void Remove(const std::vector<StreamPattern>& patterns, T* value) {
    if (patterns.empty()) {
      Erase(all_, value);
      return;
    }
    for (const StreamPattern& p : patterns) RemoveFrom(&root_, p, 0, value);
  }

  // Calls f(value) for every value whose pattern matches `stream`. A value indexed under
  // several matching patterns is visited once per pattern.
  template <typename F>
  void ForEachMatch(absl::string_view stream, F&& f) const {
    for (T* v : all_) f(v);
    tokens_.clear();
    for (absl::string_view t : absl::StrSplit(stream, '/')) tokens_.push_back(t);
    Walk(&root_, 0, f);
  }

  bool empty() const { return all_.empty() && root_.Empty(); }

 private:
  struct Node {
    absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;
    std::unique_ptr<Node> star;  // '*': any one token.
    std::vector<T*> here;        // Patterns ending at this node.
    std::vector<T*> tail;        // Patterns ending with '>' here: one or more tokens more.
    bool Empty() const {
      return children.empty() && star == nullptr && here.empty() && tail.empty();
    }
  };

  static void Erase(std::vector<T*>& v, T* value) {
    auto it = std::find(v.begin(), v.end(), value);
    if (it != v.end()) {
      *it = v.back();
      v.pop_back();
    }
  }

  // Removes and prunes nodes left empty. Returns whether `n` is now empty.
  static bool RemoveFrom(Node* n, const StreamPattern& p, size_t i, T* value) {
    if (i == p.tokens().size()) {
      Erase(p.has_tail_wildcard() ? n->tail : n->here, value);
      return n->Empty();
    }
    const std::string& t = p.tokens()[i];
    if (t == "*") {
      if (n->star != nullptr && RemoveFrom(n->star.get(), p, i + 1, value)) n->star.reset();
    } else {
      auto it = n->children.find(t);
      if (it != n->children.end() && RemoveFrom(it->second.get(), p, i + 1, value)) {
        n->children.erase(it);
      }
    }
    return n->Empty();
  }

  template <typename F>
  void Walk(const Node* n, size_t i, F& f) const {
    if (i == tokens_.size()) {
      for (T* v : n->here) f(v);
      return;
    }
    for (T* v : n->tail) f(v);  // '>' takes the remaining (at least one) tokens.
    if (!n->children.empty()) {
      auto it = n->children.find(tokens_[i]);
      if (it != n->children.end()) Walk(it->second.get(), i + 1, f);
    }
    if (n->star != nullptr) Walk(n->star.get(), i + 1, f);
  }

  Node root_;
  std::vector<T*> all_;
  mutable std::vector<absl::string_view> tokens_;  // Scratch for ForEachMatch.
};

}  // namespace hookstream::subscription

#endif  // HOOKSTREAM_SERVER_SUBSCRIPTION_PATTERN_INDEX_H_
