# Included by a test directory (tests/c, tests/omp) right after its project() call, which it makes
# only when it is configured as a project of its own. Then: testing, C11 with -Wall -Wextra -Werror,
# and the library cargo built in target/release as the imported target sharedmem::sharedmem (the
# top-level CMakeLists.txt defines that target otherwise).
if(CMAKE_SOURCE_DIR STREQUAL CMAKE_CURRENT_SOURCE_DIR)
  enable_testing()
  set(CMAKE_C_STANDARD 11)
  set(CMAKE_C_STANDARD_REQUIRED ON)
  add_compile_options(-Wall -Wextra -Werror)
endif()

if(NOT TARGET sharedmem::sharedmem)
  get_filename_component(SM_ROOT "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
  set(SM_LIB "${SM_ROOT}/target/release/libsharedmem.so")
  if(NOT EXISTS "${SM_LIB}")
    message(WARNING "sharedmem tests: ${SM_LIB} does not exist yet (run `cargo build --release`)")
  endif()
  add_library(sharedmem::sharedmem SHARED IMPORTED)
  set_target_properties(sharedmem::sharedmem PROPERTIES
    IMPORTED_LOCATION "${SM_LIB}"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${SM_ROOT}/include")
endif()

# sm_test_environment(<test> <env> <unset>): runs <test> with the variables of the list <env>
# (VAR=value ...) set and those of <unset> (VAR=unset: ..., the ENVIRONMENT_MODIFICATION form)
# removed, except where <env> sets them: tests must not depend on the caller's environment
# (debug mode, worker counts) unless they set it on purpose. Removing needs CMake 3.22.
function(sm_test_environment test env unset)
  if(env)
    set_tests_properties(${test} PROPERTIES ENVIRONMENT "${env}")
  endif()
  if(CMAKE_VERSION VERSION_LESS 3.22)
    return()
  endif()
  set(mods "")
  foreach(m IN LISTS unset)
    string(REGEX REPLACE "=.*" "" var "${m}")
    if(NOT "${env}" MATCHES "(^|;)${var}=")
      list(APPEND mods "${m}")
    endif()
  endforeach()
  if(mods)
    set_tests_properties(${test} PROPERTIES ENVIRONMENT_MODIFICATION "${mods}")
  endif()
endfunction()
