// File: net/src/http/http_client_connection.cc
#include "http/http_client_connection.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ioloop::net {

std::shared_ptr<ClientConnection> ClientConnection::create(IOLoop& loop,
                                                           std::shared_ptr<IOStream> stream,
                                                           std::string key,
                                                           ResponseParserOptions options,
                                                           std::weak_ptr<Owner> owner) {
  auto c = std::make_shared<ClientConnection>(loop, std::move(stream), std::move(key), options,
                                              std::move(owner));
  c->start_reading();
  return c;
}

ClientConnection::ClientConnection(IOLoop& loop, std::shared_ptr<IOStream> stream, std::string key,
                                   ResponseParserOptions options, std::weak_ptr<Owner> owner)
    : loop_(loop),
      stream_(std::move(stream)),
      key_(std::move(key)),
      parser_(options),
      owner_(std::move(owner)) {}

ClientConnection::~ClientConnection() {
  if (!closed_) stream_->close();
}

void ClientConnection::start_reading() {
  std::weak_ptr<ClientConnection> weak = weak_from_this();
  stream_->read_streaming(
      [weak](absl::string_view chunk) {
        if (auto self = weak.lock()) self->on_chunk(chunk);
      },
      [weak](absl::StatusOr<std::string> done) {
        if (auto self = weak.lock()) self->on_done(done.status());
      });
}

void ClientConnection::begin(uint64_t id, HTTPMethod method) {
  exchange_ = id;
  completed_ = false;
  first_byte_at_ = TimePoint{};
  last_byte_at_ = TimePoint{};
  method_ = method;
  parser_.start(method);
}

void ClientConnection::write(std::string data, IOStream::WriteCallback on_flushed) {
  stream_->write(std::move(data), std::move(on_flushed));
}

void ClientConnection::write_copy(absl::string_view data, IOStream::WriteCallback on_flushed) {
  stream_->write_copy(data, std::move(on_flushed));
}

bool ClientConnection::sending() const { return !closed_ && stream_->writing(); }

void ClientConnection::pause_reading() { stream_->pause_reading(); }
void ClientConnection::resume_reading() { stream_->resume_reading(); }
bool ClientConnection::reading_paused() const { return stream_->reading_paused(); }

bool ClientConnection::stale() const {
  if (closed_) return true;
  char byte;
  const ssize_t n = ::recv(stream_->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void ClientConnection::close(absl::Status reason) {
  if (closed_) return;
  closed_ = true;
  exchange_ = 0;
  stream_->close(std::move(reason));
}

void ClientConnection::fail(Owner& owner, absl::Status status) {
  const uint64_t id = exchange_;
  const bool started = parser_.started_response();
  close(status);
  owner.on_failed(*this, id, std::move(status), started);
}

void ClientConnection::on_chunk(absl::string_view chunk) {
  if (closed_) return;
  std::shared_ptr<Owner> owner = owner_.lock();
  if (!owner) {
    close();
    return;
  }
  auto self = shared_from_this();  // the owner may drop us from inside an event
  if (exchange_ == 0) {
    // Nothing was asked: a server bug (or a late response to a cancelled exchange, which
    // closed the connection already). The connection cannot be trusted any more.
    close(absl::DataLossError("unexpected bytes from the server on an idle connection"));
    owner->on_idle_closed(*this);
    return;
  }
  last_byte_at_ = loop_.iteration_time();
  if (first_byte_at_ == TimePoint{}) first_byte_at_ = last_byte_at_;
  const uint64_t id = exchange_;
  feeding_owner_ = owner.get();
  absl::StatusOr<size_t> used = parser_.feed(chunk, *this);
  deliver_body(id);
  feeding_owner_ = nullptr;
  if (closed_ || exchange_ != id) return;  // the owner ended the exchange from an event
  if (!used.ok()) return fail(*owner, used.status());
  if (!completed_) return;
  // The response ended inside this chunk. Anything after it was not asked for.
  const bool reusable = parser_.keep_alive() && *used == chunk.size();
  exchange_ = 0;
  owner->on_complete(*this, id, reusable);
}

void ClientConnection::on_done(absl::Status status) {
  if (closed_) return;
  std::shared_ptr<Owner> owner = owner_.lock();
  if (!owner) {
    close();
    return;
  }
  auto self = shared_from_this();
  if (exchange_ == 0) {
    close(status);
    owner->on_idle_closed(*this);
    return;
  }
  if (!status.ok()) {
    // A reset (or another socket error): the response, if it started, is cut short. Either way
    // the transport failed: Unavailable, whatever the errno (a keep-alive probe's ETIMEDOUT,
    // which absl calls DeadlineExceeded, is no fetch timeout).
    return fail(*owner, absl::UnavailableError(
                            parser_.started_response()
                                ? absl::StrCat("connection error while reading the response: ",
                                               status.message())
                                : status.message()));
  }
  if (!parser_.started_response()) {
    return fail(*owner, absl::UnavailableError(
                            "the server closed the connection before sending a response"));
  }
  const uint64_t id = exchange_;
  feeding_owner_ = owner.get();
  absl::Status finished = parser_.finish(*this);
  deliver_body(id);
  feeding_owner_ = nullptr;
  if (closed_ || exchange_ != id) return;
  if (!finished.ok()) return fail(*owner, std::move(finished));
  // A close-delimited body ended; the connection is done either way.
  close();
  exchange_ = 0;
  owner->on_complete(*this, id, /*reusable=*/false);
}

void ClientConnection::on_head(HTTPResponseHead head) {
  bodiless_ = method_ == HTTPMethod::kHead || head.status == 204 || head.status == 304;
  if (closed_ || feeding_owner_ == nullptr) return;
  feeding_owner_->on_head(*this, exchange_, std::move(head));
}

void ClientConnection::on_interim(HTTPResponseHead head) {
  if (closed_ || feeding_owner_ == nullptr) return;
  feeding_owner_->on_interim(*this, exchange_, std::move(head));
}

void ClientConnection::on_body(absl::string_view data) {
  if (closed_ || feeding_owner_ == nullptr || data.empty()) return;
  if (body_view_.empty()) {
    body_view_ = data;
    return;
  }
  if (body_view_.data() != joined_body_.data())
    joined_body_.assign(body_view_.data(), body_view_.size());
  joined_body_.append(data.data(), data.size());
  body_view_ = joined_body_;
}

void ClientConnection::deliver_body(uint64_t exchange) {
  const absl::string_view body = std::exchange(body_view_, absl::string_view());
  // An exchange the owner ended from an event (a cancel, a header callback) takes no more.
  if (!body.empty() && !closed_ && exchange_ == exchange) {
    feeding_owner_->on_body(*this, exchange, body);
  }
  // A large join is not kept by a connection that may go back to the pool idle.
  if (joined_body_.capacity() > 16 * 1024) {
    std::string().swap(joined_body_);
  } else {
    joined_body_.clear();
  }
}

void ClientConnection::on_complete() { completed_ = true; }

}  // namespace ioloop::net
