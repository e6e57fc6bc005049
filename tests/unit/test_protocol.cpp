// The protocol between the module and its helper: every message survives
// encoding and decoding, a decoder accepts nothing else, and the channel
// frames, bounds and reads what has arrived before judging a deadline.
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "util/file_descriptor.hpp"
#include "protocol/protocol.hpp"
#include "unit_test.hpp"

using ptv::ChannelError;
using ptv::Message;
using std::chrono::milliseconds;

namespace {

Message round_trip(Message m) {
  const ptv::Secret body = ptv::encode_body(m);
  auto back = ptv::decode_body(body.view());
  if (!back) fail_msg("%s did not decode: %s", ptv::message_name(m),
                      back.error().c_str());
  assert_int_equal(back->index(), m.index());
  return std::move(*back);
}

void test_every_message_round_trips(void**) {
  ptv::RequestMsg req;
  req.config_path = "/etc/security/pam_twilio_verify.conf";
  req.account = "alice";
  req.gecos = "Alice,,+1 555 123 4567,,";
  req.first_source = 2;
  req.set_id = true;
  req.debug = true;
  req.remote_host = "2001:db8::7";
  const auto r = std::get<ptv::RequestMsg>(round_trip(req));
  assert_int_equal(r.version, ptv::kProtocolVersion);
  assert_str_eq(r.config_path, req.config_path);
  assert_str_eq(r.account, "alice");
  assert_str_eq(r.gecos, req.gecos);
  assert_int_equal(r.first_source, 2);
  assert_true(r.set_id && r.debug);
  assert_str_eq(r.remote_host, "2001:db8::7");

  ptv::CodeMsg code{ptv::CodeProblem::None, ptv::Secret("918273")};
  const auto c = std::get<ptv::CodeMsg>(round_trip(std::move(code)));
  assert_true(c.problem == ptv::CodeProblem::None);
  assert_str_eq(c.digits.view(), "918273");
  const auto p = std::get<ptv::CodeMsg>(
      round_trip(ptv::CodeMsg{ptv::CodeProblem::IsPassword, {}}));
  assert_true(p.problem == ptv::CodeProblem::IsPassword && p.digits.empty());

  ptv::SendReservation s;
  s.decision = ptv::SendDecision::LimitReached;
  s.stamp = 1700000000;
  s.used = 5;
  s.retry_in_s = 42;
  s.detail = "send limit reached";
  const auto rs = std::get<ptv::ReservedMsg>(round_trip(ptv::ReservedMsg{s}));
  assert_true(rs.reservation.decision == ptv::SendDecision::LimitReached);
  assert_int_equal(rs.reservation.stamp, 1700000000);
  assert_int_equal(rs.reservation.used, 5);
  assert_int_equal(rs.reservation.retry_in_s, 42);
  assert_str_eq(rs.reservation.detail, "send limit reached");

  ptv::AuthResult a;
  a.outcome = ptv::Outcome::Approved;
  a.masked_phone = "+1******4567";
  a.verification_sid = "VE00112233445566778899aabbccddeeff";
  a.attempts = 2;
  a.detail = "code approved";
  const auto res = std::get<ptv::ResultMsg>(round_trip(ptv::ResultMsg{a}));
  assert_true(res.result.outcome == ptv::Outcome::Approved);
  assert_str_eq(res.result.masked_phone, a.masked_phone);
  assert_str_eq(res.result.verification_sid, a.verification_sid);
  assert_int_equal(res.result.attempts, 2);
  assert_str_eq(res.result.detail, "code approved");

  assert_str_eq(std::get<ptv::PromptMsg>(round_trip(ptv::PromptMsg{"SMS code: "})).text,
                "SMS code: ");
  assert_str_eq(std::get<ptv::ShowErrorMsg>(round_trip(ptv::ShowErrorMsg{"Wrong."})).text,
                "Wrong.");
  const auto l = std::get<ptv::LogMsg>(round_trip(ptv::LogMsg{4, "warn"}));
  assert_int_equal(l.priority, 4);
  assert_int_equal(std::get<ptv::ReleaseMsg>(round_trip(ptv::ReleaseMsg{77})).stamp, 77);
  (void)std::get<ptv::ReserveMsg>(round_trip(ptv::ReserveMsg{}));
  const auto refused = std::get<ptv::ReleasedMsg>(
      round_trip(ptv::ReleasedMsg{std::unexpected(ptv::StateError{"x"})}));
  assert_false(refused.released.has_value());
  assert_str_eq(refused.released.error().detail, "x");
  assert_true(std::get<ptv::ReleasedMsg>(round_trip(ptv::ReleasedMsg{})).released.has_value());
  for (ptv::CodeRequest q : {ptv::CodeRequest::Resend, ptv::CodeRequest::Call})
    assert_true(std::get<ptv::ResendMsg>(round_trip(ptv::ResendMsg{q})).request == q);
  assert_true(std::get<ptv::ConversationFailedMsg>(
                  round_trip(ptv::ConversationFailedMsg{ptv::ConversationError::NoReply}))
                  .error == ptv::ConversationError::NoReply);
}

std::string body_of(const Message& m) { return std::string(ptv::encode_body(m).view()); }

void expect_refused(const std::string& body, const char* why) {
  if (ptv::decode_body(body)) fail_msg("accepted: %s", why);
}

void test_decoder_accepts_nothing_else(void**) {
  expect_refused("", "an empty body");
  expect_refused(std::string(1, '\x7f'), "an unknown type");
  expect_refused(std::string(1, '\x07'), "a type between the two ranges");
  // A resend request is resend or call, never none, and carries no code.
  expect_refused(body_of(ptv::ResendMsg{ptv::CodeRequest::None}), "a request for nothing");
  std::string resend = body_of(ptv::ResendMsg{ptv::CodeRequest::Call});
  expect_refused(resend + "1234", "a request with digits after it");
  resend[1] = '\x03';
  expect_refused(resend, "a request that does not exist");
  const std::string reserve = body_of(ptv::ReserveMsg{});
  expect_refused(reserve + "x", "bytes after the last field");
  const std::string prompt = body_of(ptv::PromptMsg{"abc"});
  expect_refused(prompt.substr(0, prompt.size() - 1), "a truncated string");
  // A string whose length runs past the body.
  std::string lying = prompt;
  lying[1] = '\x10';
  expect_refused(lying, "a length past the end");
  // Outcome out of range.
  ptv::AuthResult a;
  std::string result = body_of(ptv::ResultMsg{a});
  result[1] = '\x7f';
  expect_refused(result, "an outcome that does not exist");
  // Digits only for a well-formed code, and only digits.
  std::string code = body_of(ptv::CodeMsg{ptv::CodeProblem::None, ptv::Secret("1234")});
  code[code.size() - 1] = 'x';
  expect_refused(code, "a code with a letter");
  expect_refused(body_of(ptv::CodeMsg{ptv::CodeProblem::None, ptv::Secret("123")}),
                 "a code of three digits");
  expect_refused(body_of(ptv::CodeMsg{ptv::CodeProblem::None,
                                      ptv::Secret("12345678901")}),
                 "a code of eleven digits");
  expect_refused(body_of(ptv::CodeMsg{ptv::CodeProblem::NotDigits,
                                      ptv::Secret("abcd")}),
                 "text with a rejected reply");
  // A request with a relative configuration path, or no account.
  ptv::RequestMsg rel;
  rel.config_path = "relative.conf";
  rel.account = "alice";
  expect_refused(body_of(rel), "a relative configuration path");
  ptv::RequestMsg anon;
  anon.config_path = "/x.conf";
  expect_refused(body_of(anon), "an empty account");
  ptv::RequestMsg nul;
  nul.config_path = "/x.conf";
  nul.account = std::string("al\0ice", 6);
  expect_refused(body_of(nul), "a NUL in the account");
  // A flag that is neither 0 nor 1.
  ptv::RequestMsg ok;
  ok.config_path = "/x.conf";
  ok.account = "alice";
  std::string flag = body_of(ok);
  assert_true(ptv::decode_body(flag).has_value());
  flag[flag.size() - 5] = '\x02';  // debug, before PAM_RHOST's length
  expect_refused(flag, "a flag of 2");
  // PAM_RHOST: at most kMaxRemoteHostBytes, no NUL.
  ptv::RequestMsg host;
  host.config_path = "/x.conf";
  host.account = "alice";
  host.remote_host = std::string(ptv::kMaxRemoteHostBytes, 'h');
  assert_true(ptv::decode_body(body_of(host)).has_value());
  host.remote_host += "h";
  expect_refused(body_of(host), "a PAM_RHOST over the limit");
  host.remote_host = std::string("10.0.0.1\0x", 10);
  expect_refused(body_of(host), "a NUL in PAM_RHOST");
}

struct Pair {
  ptv::FileDescriptor a, b;
  Pair() {
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a = ptv::FileDescriptor(fds[0]);
    b = ptv::FileDescriptor(fds[1]);
  }
};

void test_channel_frames_and_bounds(void**) {
  Pair p;
  ptv::MessageChannel left(p.a.get()), right(p.b.get());
  assert_true(left.send(ptv::PromptMsg{"code: "}).has_value());
  assert_true(left.send(ptv::LogMsg{6, "two in a row"}).has_value());
  auto first = right.receive(milliseconds(1000));
  assert_true(first.has_value());
  assert_str_eq(std::get<ptv::PromptMsg>(*first).text, "code: ");
  auto second = right.receive(milliseconds(1000));
  assert_str_eq(std::get<ptv::LogMsg>(*second).text, "two in a row");

  // Nothing arrives: a timeout, after about the bound.
  const auto t0 = std::chrono::steady_clock::now();
  auto none = right.receive(milliseconds(200));
  assert_false(none.has_value());
  assert_true(none.error().error == ChannelError::TimedOut);
  assert_true(std::chrono::steady_clock::now() - t0 >= milliseconds(190));

  // What has arrived is read even with no time left (a bound of 0).
  assert_true(left.send(ptv::ReserveMsg{}).has_value());
  auto waiting = right.receive(milliseconds(0));
  assert_true(waiting.has_value());

  // A frame longer than the limit, or one that does not decode.
  const unsigned char huge[] = {0xff, 0xff, 0xff, 0x7f};
  assert_int_equal(write(p.a.get(), huge, 4), 4);
  auto big = right.receive(milliseconds(1000));
  assert_true(!big && big.error().error == ChannelError::Malformed);

  Pair q;
  ptv::MessageChannel from(q.a.get()), to(q.b.get());
  const unsigned char junk[] = {2, 0, 0, 0, 0x7f, 0x00};
  assert_int_equal(write(q.a.get(), junk, sizeof junk), sizeof junk);
  auto bad = to.receive(milliseconds(1000));
  assert_true(!bad && bad.error().error == ChannelError::Malformed);

  // The other end goes away: Closed, on both sides.
  q.a.reset();
  auto gone = to.receive(milliseconds(1000));
  assert_true(!gone && gone.error().error == ChannelError::Closed);
  auto unsent = to.send(ptv::ReserveMsg{});
  assert_true(!unsent && unsent.error().error == ChannelError::Closed);
}

// A peer that stops reading cannot hang a writer: once the socket buffer
// is full, send gives up after its bound. Paired: the same traffic to a
// peer that reads arrives whole.
void test_send_to_a_peer_that_does_not_read(void**) {
  Pair p;
  int small = 4096;
  setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(p.b.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ptv::MessageChannel writer(p.a.get());
  const ptv::LogMsg big{6, std::string(4000, 'x')};
  const auto t0 = std::chrono::steady_clock::now();
  std::expected<void, ptv::ChannelFailure> sent;
  int frames = 0;
  for (; frames < 1000; ++frames) {
    sent = writer.send(big, milliseconds(200));
    if (!sent) break;
  }
  assert_false(sent.has_value());
  assert_true(sent.error().error == ChannelError::TimedOut);
  const auto took = std::chrono::steady_clock::now() - t0;
  assert_true(took >= milliseconds(190));
  assert_true(took < milliseconds(5000));

  Pair q;
  ptv::MessageChannel out(q.a.get()), in(q.b.get());
  std::thread reader([&in] {
    for (int i = 0; i < 50; ++i) {
      auto m = in.receive(milliseconds(5000));
      assert_true(m.has_value());
      assert_int_equal(std::get<ptv::LogMsg>(*m).text.size(), 4000);
    }
  });
  for (int i = 0; i < 50; ++i)
    assert_true(out.send(big, milliseconds(5000)).has_value());
  reader.join();
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_message_round_trips),
      cmocka_unit_test(test_decoder_accepts_nothing_else),
      cmocka_unit_test(test_channel_frames_and_bounds),
      cmocka_unit_test(test_send_to_a_peer_that_does_not_read),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
