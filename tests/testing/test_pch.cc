// The translation unit of ioloop_test_pch (tests/CMakeLists.txt), the target whose
// precompiled header every GoogleTest suite reuses. It defines nothing.
