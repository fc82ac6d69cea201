# The layering rule, enforced by the build: a library's sources may include only headers of
# its own folder and of the libraries it links (transitively), and a torch-free library no
# torch header. The allowed folders are read off the target graph itself, so the CMake links
# are the one statement of the rule; check_layering.cmake applies it to every #include.
#
# flywheel_check_layering() runs after every library is defined: it writes the rules to
# build/layering-rules.txt, checks them before any library compiles, and adds the same check
# as a test.
function(_flywheel_linked_libraries target all out)
  set(found)
  set(queue ${target})
  while(queue)
    list(POP_FRONT queue current)
    get_target_property(links ${current} LINK_LIBRARIES)
    foreach(link IN LISTS links)
      if(link IN_LIST all AND NOT link IN_LIST found)
        list(APPEND found ${link})
        list(APPEND queue ${link})
      endif()
    endforeach()
  endwhile()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

function(flywheel_check_layering)
  get_property(libraries GLOBAL PROPERTY FLYWHEEL_LIBRARIES)
  set(rules "")
  foreach(library IN LISTS libraries)
    _flywheel_linked_libraries(${library} "${libraries}" linked)
    get_target_property(dir ${library} FLYWHEEL_DIR)
    get_target_property(torch_free ${library} FLYWHEEL_TORCH_FREE)
    set(allowed ${dir})
    foreach(dep IN LISTS linked)
      get_target_property(dep_dir ${dep} FLYWHEEL_DIR)
      list(APPEND allowed ${dep_dir})
    endforeach()
    list(JOIN allowed "," allowed)
    string(APPEND rules "${library}|${dir}|${allowed}|${torch_free}\n")
  endforeach()
  set(rules_file ${PROJECT_BINARY_DIR}/layering-rules.txt)
  file(WRITE ${rules_file} "${rules}")
  set(check ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DRULES=${rules_file} -P
            ${PROJECT_SOURCE_DIR}/cmake/check_layering.cmake)
  add_custom_target(flywheel_layering ALL COMMAND ${check} VERBATIM)
  foreach(library IN LISTS libraries)
    add_dependencies(${library} flywheel_layering)
  endforeach()
  if(FLYWHEEL_BUILD_TESTS)
    add_test(NAME Layering COMMAND ${check})
  endif()
endfunction()
