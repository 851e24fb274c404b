#include "ioloop/recycling_allocator.h"

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ioloop {
namespace {

// Each test uses its own block size, so that the per-thread lists start empty.
struct Counted {
  static inline int live = 0;
  explicit Counted(int v) : value(v) { ++live; }
  ~Counted() { --live; }
  int value;
  std::array<char, 40> payload{};
};

template <int kTag>
struct Block {
  std::array<char, 1024 + 64 * kTag> bytes{};  // a size class of its own
};

TEST(RecyclingAllocatorTest, AllocateSharedConstructsAndDestroysTheObject) {
  {
    auto p = std::allocate_shared<Counted>(RecyclingAllocator<Counted>(), 42);
    EXPECT_EQ(p->value, 42);
    EXPECT_EQ(Counted::live, 1);
    std::weak_ptr<Counted> weak = p;
    p.reset();
    EXPECT_EQ(Counted::live, 0);  // destroyed at the last strong reference
    EXPECT_TRUE(weak.expired());
  }
  EXPECT_EQ(Counted::live, 0);
}

TEST(RecyclingAllocatorTest, AFreedBlockIsTheNextOneHandedOutOnTheSameThread) {
  if (!RecyclingAllocator<Block<1>>::kRecycles) GTEST_SKIP() << "AddressSanitizer: heap only";
  RecyclingAllocator<Block<1>> alloc;
  Block<1>* a = alloc.allocate(1);
  Block<1>* b = alloc.allocate(1);
  EXPECT_EQ(RecyclingAllocator<Block<1>>::cached(), 0u);
  alloc.deallocate(a, 1);
  alloc.deallocate(b, 1);
  EXPECT_EQ(RecyclingAllocator<Block<1>>::cached(), 2u);
  // Last in, first out: the block still warm in the cache comes back first.
  EXPECT_EQ(alloc.allocate(1), b);
  EXPECT_EQ(alloc.allocate(1), a);
  EXPECT_EQ(RecyclingAllocator<Block<1>>::cached(), 0u);
  alloc.deallocate(a, 1);
  alloc.deallocate(b, 1);
}

TEST(RecyclingAllocatorTest, TypesOfOneBlockSizeShareAList) {
  if (!RecyclingAllocator<Block<2>>::kRecycles) GTEST_SKIP() << "AddressSanitizer: heap only";
  struct Same {
    std::array<char, sizeof(Block<2>)> bytes;
  };
  RecyclingAllocator<Block<2>> alloc;
  Block<2>* a = alloc.allocate(1);
  alloc.deallocate(a, 1);
  RecyclingAllocator<Same> other(alloc);  // a rebind, as allocate_shared makes
  EXPECT_EQ(static_cast<void*>(other.allocate(1)), static_cast<void*>(a));
  EXPECT_EQ(alloc, other);
  other.deallocate(reinterpret_cast<Same*>(a), 1);
}

TEST(RecyclingAllocatorTest, ArraysGoToTheHeapAndAreNotCached) {
  RecyclingAllocator<Block<3>> alloc;
  Block<3>* many = alloc.allocate(5);
  for (int i = 0; i < 5; ++i) many[i].bytes[0] = static_cast<char>(i);  // usable, 5 of them
  alloc.deallocate(many, 5);
  EXPECT_EQ(RecyclingAllocator<Block<3>>::cached(), 0u);
  std::vector<Block<3>, RecyclingAllocator<Block<3>>> v(100);
  v.resize(1);
  v.shrink_to_fit();  // a one-element array: the same size class, and given back to the list
  EXPECT_EQ(v.size(), 1u);
}

TEST(RecyclingAllocatorTest, AThreadKeepsAtMostTheCapAndTheRestGoBackToTheHeap) {
  if (!RecyclingAllocator<Block<4>>::kRecycles) GTEST_SKIP() << "AddressSanitizer: heap only";
  using Alloc = RecyclingAllocator<Block<4>>;
  Alloc alloc;
  constexpr size_t kMany = Alloc::kMaxCachedBlocks + 50;
  std::vector<Block<4>*> blocks;
  for (size_t i = 0; i < kMany; ++i) blocks.push_back(alloc.allocate(1));
  for (Block<4>* b : blocks) alloc.deallocate(b, 1);
  EXPECT_EQ(Alloc::cached(), Alloc::kMaxCachedBlocks);
  // Handed out again: each once, all distinct (no block is on the list twice).
  std::set<Block<4>*> again;
  for (size_t i = 0; i < Alloc::kMaxCachedBlocks; ++i) again.insert(alloc.allocate(1));
  EXPECT_EQ(again.size(), Alloc::kMaxCachedBlocks);
  EXPECT_EQ(Alloc::cached(), 0u);
  for (Block<4>* b : again) alloc.deallocate(b, 1);
}

TEST(RecyclingAllocatorTest, ABlockFreedOnAnotherThreadJoinsThatThreadsList) {
  if (!RecyclingAllocator<Block<5>>::kRecycles) GTEST_SKIP() << "AddressSanitizer: heap only";
  using Alloc = RecyclingAllocator<Block<5>>;
  Block<5>* made_here = Alloc().allocate(1);
  made_here->bytes[0] = 'x';
  size_t cached_there = 99;
  Block<5>* reused_there = nullptr;
  std::thread other([&] {
    EXPECT_EQ(made_here->bytes[0], 'x');
    Alloc().deallocate(made_here, 1);
    cached_there = Alloc::cached();
    reused_there = Alloc().allocate(1);
    Alloc().deallocate(reused_there, 1);  // kept by that thread's list, freed at its exit
  });
  other.join();
  EXPECT_EQ(cached_there, 1u);
  EXPECT_EQ(reused_there, made_here);
  EXPECT_EQ(Alloc::cached(), 0u);  // nothing came back to this thread's list
}

}  // namespace
}  // namespace ioloop
