# Shared compile settings for every Flywheel target.
function(flywheel_target_defaults target)
  # -fPIC even for executables: with the default -fPIE, GCC copy-relocates libstdc++ objects
  # such as std::cerr into the executable, and the SentencePiece plugin (loaded with
  # RTLD_DEEPBIND, see trainer/text/sentencepiece_backend.h) would then use libstdc++'s own,
  # never-initialised copy and crash on its first log line.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -fPIC)
  # GCC 12 at -O3 in C++20 reports impossible memcpy bounds and overlaps inside inlined
  # std::string code (operator+, insert): known false positives of that compiler (LibTorch's
  # own build turns off -Wstringop-overflow for the same reason).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-array-bounds -Wno-stringop-overflow
                                             -Wno-restrict)
  endif()
  if(FLYWHEEL_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# Records a library of the source tree for the layering check (cmake/layering.cmake): its
# folder, and whether it may use torch.
function(flywheel_register_library name torch_free)
  file(RELATIVE_PATH dir ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set_target_properties(${name} PROPERTIES FLYWHEEL_DIR ${dir} FLYWHEEL_TORCH_FREE ${torch_free})
  set_property(GLOBAL APPEND PROPERTY FLYWHEEL_LIBRARIES ${name})
endfunction()

# flywheel_library(NAME SOURCES...): a static library on torch, reusing the shared torch PCH.
function(flywheel_library name)
  add_library(${name} STATIC ${ARGN})
  flywheel_target_defaults(${name})
  target_precompile_headers(${name} REUSE_FROM flywheel_pch)
  target_link_libraries(${name} PUBLIC flywheel_pch)
  flywheel_register_library(${name} OFF)
endfunction()

# flywheel_plain_library(NAME SOURCES...): a static library without torch (nor its PCH).
function(flywheel_plain_library name)
  add_library(${name} STATIC ${ARGN})
  flywheel_target_defaults(${name})
  flywheel_register_library(${name} ON)
endfunction()

# flywheel_openmp_sources(TARGET SOURCES...): these sources of TARGET spread work over LibTorch's
# OpenMP threads with at::parallel_for, which is parallel only where the including file is
# compiled with OpenMP (the `omp parallel` is in its header; elsewhere it runs serially). Only
# these files, so that the shared precompiled header (built without -fopenmp) stays valid for
# the rest. At run time the OpenMP runtime is the one LibTorch loads (libgomp.so.1), so there is
# one thread pool.
function(flywheel_openmp_sources target)
  find_package(OpenMP REQUIRED COMPONENTS CXX)
  set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES
                              SKIP_PRECOMPILE_HEADERS ON COMPILE_OPTIONS "${OpenMP_CXX_FLAGS}")
  target_link_libraries(${target} PRIVATE ${OpenMP_CXX_LIBRARIES})
endfunction()
