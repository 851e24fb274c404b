#include "ioloop/events.h"

#include <string>

namespace ioloop {

std::string events_to_string(uint32_t events) {
  std::string out;
  auto add = [&out](const char* name) {
    if (!out.empty()) out += '|';
    out += name;
  };
  if (events & READ) add("READ");
  if (events & WRITE) add("WRITE");
  if (events & 0x008) add("ERR");
  if (events & 0x010) add("HUP");
  if (events & EDGE) add("EDGE");
  if (out.empty()) out = "NONE";
  return out;
}

}  // namespace ioloop
