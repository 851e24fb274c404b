// Starts a thread under single_thread_guard.cc: the test expects the guard's message (and
// its abort), proving that a single-threaded suite which starts a thread is caught.
#include <cstdio>
#include <thread>

int main() {
  std::thread thread([] {});
  thread.join();
  std::puts("the thread ran: single_thread_guard.cc did not interpose on pthread_create");
  return 0;
}
