# Shared compile settings for every Flywheel target.
function(flywheel_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# flywheel_library(NAME SOURCES...): a static library that reuses the shared torch PCH.
function(flywheel_library name)
  add_library(${name} STATIC ${ARGN})
  flywheel_target_defaults(${name})
  target_precompile_headers(${name} REUSE_FROM flywheel_pch)
  target_link_libraries(${name} PUBLIC flywheel_pch)
endfunction()
