// test_main.cpp -- gtest main: process set-up shared with the tools (HDF5 quiet, zstd filter).
#include <gtest/gtest.h>

#include "h5/handle.hpp"
#include "h5/zstd_filter.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  treerpo::h5::silence_errors();
  treerpo::h5::register_zstd_filter();
  return RUN_ALL_TESTS();
}
