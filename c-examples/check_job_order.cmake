# Runs an example and checks the order of the lines it prints.
#
#   cmake -DPROG=<exe> -DBACKEND=<backend> -DNJOBS=<n> -P check_job_order.cmake
#
# Passes when the program exits 0 AND the lines of the form "job N" in its
# standard output are exactly "job 0", "job 1", ..., "job <NJOBS-1>", in that
# order (other lines are ignored).  The output is always echoed, so
# `ctest --output-on-failure` / `ctest -V` show it.
foreach(var PROG BACKEND NJOBS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_job_order.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(
  COMMAND "${PROG}" "${BACKEND}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 100)

message("---- stdout of ${PROG} ${BACKEND} ----\n${out}")
if(err)
  message("---- stderr ----\n${err}")
endif()

if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "FAIL: ${PROG} ${BACKEND} exited with '${rc}'")
endif()

# Collect the "job N" lines in the order they were printed.
# (Split into a CMake list of lines; neutralise ';' first since it is CMake's
# list separator.)
string(REPLACE ";" "," text "${out}")
string(REPLACE "\n" ";" lines "${text}")
set(seen "")
foreach(line IN LISTS lines)
  if(line MATCHES "^job ([0-9]+)\r?$")
    list(APPEND seen "${CMAKE_MATCH_1}")
  endif()
endforeach()

math(EXPR last "${NJOBS} - 1")
set(expected "")
foreach(i RANGE 0 ${last})
  list(APPEND expected "${i}")
endforeach()

if(NOT seen STREQUAL expected)
  string(REPLACE ";" " " seen_s "${seen}")
  string(REPLACE ";" " " expected_s "${expected}")
  message(FATAL_ERROR
    "FAIL: jobs printed out of order (or missing/duplicated)\n"
    "  expected: ${expected_s}\n"
    "  got:      ${seen_s}")
endif()
message("OK: ${NJOBS} jobs printed in job order")
