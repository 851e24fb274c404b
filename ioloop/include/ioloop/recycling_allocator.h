/// @file ioloop/recycling_allocator.h
/// RecyclingAllocator<T>: a standard allocator that keeps the blocks of freed single objects in
/// a small per-thread free list and hands them out again, for objects made and destroyed once
/// per request (with std::allocate_shared, or allocate(1) and placement new).
///
/// Why: a server with many requests in flight makes and frees them in bursts (64 connections
/// answered in one turn of the loop, then 64 freed). glibc's per-thread cache keeps 7 blocks
/// of a size, so most of a burst goes through its general allocator (`_int_malloc`,
/// `_int_free`: about 250 instructions a pair on the proxy's path, docs/benchmarks.md §7). A
/// list per block size and thread costs a few instructions instead, the way nginx's
/// per-request pools do.
///
/// Contract:
///  - allocate(1) and deallocate(p, 1) use the calling thread's list of blocks of that size
///    and alignment; other counts go to operator new/delete.
///  - A block may be freed on another thread than the one that made it: it joins the freeing
///    thread's list. A list keeps at most kMaxCachedBlocks blocks (the rest go back to the heap)
///    and frees them all when its thread exits.
///  - Under AddressSanitizer every call goes to the heap (kRecycles is false), so that a use
///    after free is still reported.
///  - Stateless: any two instances compare equal; thread-safe (each thread uses its own list).
///
/// Example:
/// ```
///   auto exchange = std::allocate_shared<Exchange>(ioloop::RecyclingAllocator<Exchange>());
/// ```
#ifndef IOLOOP_RECYCLING_ALLOCATOR_H_
#define IOLOOP_RECYCLING_ALLOCATOR_H_

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace ioloop {
namespace internal {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kRecyclingEnabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kRecyclingEnabled = false;
#else
inline constexpr bool kRecyclingEnabled = true;
#endif
#else
inline constexpr bool kRecyclingEnabled = true;
#endif

// The most blocks of one size class a thread keeps (RecyclingAllocator::kMaxCachedBlocks).
inline constexpr size_t kMaxRecycledBlocks = 256;

// The calling thread's free blocks of kSize bytes aligned to kAlign, as an intrusive list (a
// free block holds the pointer to the next one).
template <size_t kSize, size_t kAlign>
class BlockFreeList {
 public:
  static_assert(kSize >= sizeof(void*) && kAlign >= alignof(void*));

  static void* take() {
    List& list = local();
    if (list.head == nullptr) return heap_new();
    Node* node = list.head;
    list.head = node->next;
    --list.count;
    return node;
  }
  static void give(void* block) noexcept {
    List& list = local();
    if (list.count >= kMaxRecycledBlocks) {
      heap_delete(block);
      return;
    }
    list.head = ::new (block) Node{list.head};
    ++list.count;
  }
  // Blocks this thread keeps (tests).
  static size_t cached() { return local().count; }

 private:
  struct Node {
    Node* next;
  };
  struct List {
    Node* head = nullptr;
    size_t count = 0;
    // At thread exit. A block freed later on this thread (by a static object's destructor,
    // after the main thread's thread_locals) then goes straight back to the heap: the list
    // reads as full.
    ~List() {
      while (head != nullptr) heap_delete(std::exchange(head, head->next));
      count = kMaxRecycledBlocks;
    }
  };
  static List& local() {
    thread_local List list;
    return list;
  }
  static void* heap_new() {
    if constexpr (kAlign > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      return ::operator new(kSize, std::align_val_t(kAlign));
    } else {
      return ::operator new(kSize);
    }
  }
  static void heap_delete(void* block) noexcept {
    if constexpr (kAlign > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(block, std::align_val_t(kAlign));
    } else {
      ::operator delete(block);  // unsized: clang 14 has no sized delete by default
    }
  }
};

}  // namespace internal

/// A standard allocator recycling single-object blocks per thread (see the file comment).
template <typename T>
class RecyclingAllocator {
 public:
  using value_type = T;  ///< what it allocates
  /// False under AddressSanitizer: every block then comes from and goes back to the heap.
  static constexpr bool kRecycles = internal::kRecyclingEnabled;
  /// The most blocks of one size a thread keeps.
  static constexpr size_t kMaxCachedBlocks = internal::kMaxRecycledBlocks;

  RecyclingAllocator() noexcept = default;
  /// The rebinding conversion (std::allocate_shared allocates its control block with it).
  template <typename U>
  RecyclingAllocator(const RecyclingAllocator<U>& /*other*/) noexcept {}

  /// One T: a block from this thread's list, else from the heap. Several: from the heap.
  /// Throws std::bad_alloc as std::allocator does.
  T* allocate(size_t n) {
    if (kRecycles && n == 1) return static_cast<T*>(List::take());
    return std::allocator<T>().allocate(n);
  }
  /// One T: onto this thread's list, or to the heap when the list is full. Several: the heap.
  void deallocate(T* p, size_t n) noexcept {
    if (kRecycles && n == 1) {
      List::give(p);
      return;
    }
    std::allocator<T>().deallocate(p, n);
  }
  /// Blocks for one T the calling thread keeps now (tests).
  static size_t cached() { return List::cached(); }

  /// Stateless: every instance can free what any other allocated.
  template <typename U>
  friend bool operator==(const RecyclingAllocator&, const RecyclingAllocator<U>&) noexcept {
    return true;
  }

 private:
  static constexpr size_t kAlign = alignof(T) < alignof(void*) ? alignof(void*) : alignof(T);
  static constexpr size_t kSize = (sizeof(T) + kAlign - 1) / kAlign * kAlign;  // >= a pointer
  using List = internal::BlockFreeList<kSize, kAlign>;
};

}  // namespace ioloop

#endif  // IOLOOP_RECYCLING_ALLOCATOR_H_
