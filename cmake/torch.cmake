# Finds LibTorch: by default the one inside the torch wheel that scripts/install-deps.sh
# installs into the project's virtual environment (.venv/), so a build needs no flags. Point
# FLYWHEEL_PYTHON at another Python, or set Torch_DIR / CMAKE_PREFIX_PATH, to use another.
#
# The wheel is built with CUDA, and its CMake config insists on a CUDA toolkit (nvcc and the
# runtime headers; keep it at the wheel's CUDA version, see scripts/requirements.txt); with one,
# every CUDA code path (ProcessGroupNCCL, device binding, pinned transfers, CUDA generators) is
# compiled and linked in the same binaries that run the tests on the CPU. FLYWHEEL_WITH_CUDA
# tells the code which build it is.
set(FLYWHEEL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose torch package provides LibTorch")
set(FLYWHEEL_MIN_TORCH_VERSION 2.4)

if(NOT Torch_DIR AND EXISTS "${FLYWHEEL_PYTHON}")
  # Locate the package without importing it (importing torch takes seconds).
  execute_process(
    COMMAND "${FLYWHEEL_PYTHON}" -c
            "import importlib.util as u; print(u.find_spec('torch').submodule_search_locations[0])"
    OUTPUT_VARIABLE _flywheel_torch_dir OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _flywheel_rc ERROR_QUIET)
  if(_flywheel_rc EQUAL 0 AND EXISTS "${_flywheel_torch_dir}/share/cmake/Torch")
    # As a search prefix, not just Torch_DIR: TorchConfig looks up Caffe2's config and the
    # torch libraries by search, and a prefix is searched before the system directories,
    # where an older LibTorch (Debian's libtorch-dev) may also be installed.
    list(PREPEND CMAKE_PREFIX_PATH "${_flywheel_torch_dir}")
  endif()
endif()

# TORCH_CUDA_ARCH_LIST only matters for .cu sources, of which there are none yet.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")  # A100, H100 / H200
endif()

find_package(Torch REQUIRED)
get_filename_component(_flywheel_torch_root "${Torch_DIR}/../../.." ABSOLUTE)
if(NOT TORCH_LIBRARY MATCHES "^${_flywheel_torch_root}/")
  message(FATAL_ERROR "LibTorch's config in ${Torch_DIR} picked up ${TORCH_LIBRARY} from "
                      "another installation; set CMAKE_PREFIX_PATH to ${_flywheel_torch_root}")
endif()
if(Torch_VERSION VERSION_LESS FLYWHEEL_MIN_TORCH_VERSION)
  message(FATAL_ERROR "Flywheel needs LibTorch >= ${FLYWHEEL_MIN_TORCH_VERSION}, found "
                      "${Torch_VERSION} in ${Torch_DIR}; run scripts/install-deps.sh")
endif()

if(TORCH_CUDA_LIBRARIES)
  set(FLYWHEEL_WITH_CUDA ON)
  # libtorch_cuda needs the CUDA libraries the wheel ships (nvidia/*/lib, found at run time
  # through its own RPATH). The linker must see those too: a system CUDA toolkit may carry
  # older ones (its NCCL lacks symbols LibTorch uses), and its directory is on the link line.
  file(GLOB _flywheel_nvidia_libs LIST_DIRECTORIES true "${_flywheel_torch_root}/../nvidia/*/lib")
  if(_flywheel_nvidia_libs)
    string(REPLACE ";" ":" _flywheel_nvidia_libs "${_flywheel_nvidia_libs}")
    add_link_options("LINKER:-rpath-link,${_flywheel_nvidia_libs}")
  endif()
else()
  set(FLYWHEEL_WITH_CUDA OFF)
endif()
message(STATUS "Flywheel: LibTorch ${Torch_VERSION} from ${Torch_DIR}, CUDA ${FLYWHEEL_WITH_CUDA}")
