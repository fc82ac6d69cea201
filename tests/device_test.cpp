// Devices and the build: what `flywheel --version` reports, device names, host-to-device
// moves and per-device generators. On a machine without a GPU the CUDA paths are compiled
// (checked here) but cannot run; asking for a GPU there is a user error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <torch/version.h>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/model/device.h"

namespace flywheel {
namespace {

// CI builds against the CUDA-enabled LibTorch wheel with the CUDA toolkit present, so a build
// there without the CUDA paths means they silently dropped out of the build.
TEST(Build, CompilesTheCudaPathsInCi) {
  const char* ci = std::getenv("CI");
  if (ci == nullptr || std::string(ci) != "true") GTEST_SKIP() << "not under CI=true";
  EXPECT_TRUE(FLYWHEEL_WITH_CUDA) << "CI must build the CUDA code paths: " << describe_build();
}

TEST(Build, VersionNamesLibTorchAndCuda) {
  auto r = testing::run_flywheel("--version");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(std::string("LibTorch ") + TORCH_VERSION), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(FLYWHEEL_WITH_CUDA ? "(compiled)" : "no CUDA"), std::string::npos)
      << r.output;
}

TEST(Device, ParsesNamesAndRejectsUnavailableGpus) {
  EXPECT_EQ(parse_device("cpu", "k"), torch::Device(torch::kCPU));
  testing::expect_user_error([] { parse_device("tpu", "model.device"); },
                             {"model.device: device must be cpu or cuda[:N], got 'tpu'"});
  testing::expect_user_error([] { parse_device("cuda:x", "model.device"); },
                             {"invalid device 'cuda:x'"});
  if (torch::cuda::device_count() == 0) {
    testing::expect_user_error([] { parse_device("cuda", "model.device"); },
                               {FLYWHEEL_WITH_CUDA ? "CUDA is not available" : "has no CUDA"});
  } else {
    EXPECT_TRUE(parse_device("cuda", "k").is_cuda());
    const auto n = std::to_string(torch::cuda::device_count());
    testing::expect_user_error([&] { parse_device("cuda:" + n, "model.device"); },
                               {"GPU(s) are visible"});
  }
}

TEST(Device, GeneratorsAreSeededPerDevice) {
  std::vector<torch::Device> devices{torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  for (const auto& device : devices) {
    auto probs = torch::softmax(torch::arange(50, torch::kFloat32) / 10, 0)
                     .to(device)
                     .expand({4, 50})
                     .contiguous();
    auto draw = [&](uint64_t seed) {
      auto g = make_generator(device, seed);
      return torch::multinomial(probs, 3, /*replacement=*/true, g).cpu();
    };
    EXPECT_TRUE(torch::equal(draw(7), draw(7))) << device;
    EXPECT_FALSE(torch::equal(draw(7), draw(8))) << device;
    auto t = torch::arange(6);
    EXPECT_TRUE(torch::equal(to_device(t, device).cpu(), t)) << device;
  }
  // On the device it is already on, to_device hands back the same tensor.
  auto t = torch::arange(3);
  EXPECT_EQ(to_device(t, torch::kCPU).data_ptr(), t.data_ptr());
}

}  // namespace
}  // namespace flywheel
