# Runs test_rankdeath under the launcher and checks that the job ends, within LIMIT seconds, with
# a nonzero status after a rank died in a job (its "dying in job" line).
#
#   cmake -DCMD=<launcher|args...|program|mode> -DLIMIT=<seconds> -P run_rankdeath.cmake
#
# (CMD's elements are separated by '|'.)
string(REPLACE "|" ";" cmd "${CMD}")
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${cmd}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT ${LIMIT})
string(TIMESTAMP t1 "%s")
math(EXPR took "${t1} - ${t0}")
message("---- stdout ----\n${out}\n---- stderr ----\n${err}\n---- exit status: '${rc}' after ${took} s")
if(NOT rc MATCHES "^-?[0-9]+$")
  message(FATAL_ERROR "FAIL: the launcher did not end within ${LIMIT} s after a rank died (${rc})")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "FAIL: the launcher exited with status 0 although a rank died")
endif()
if(NOT out MATCHES "dying in job")
  message(FATAL_ERROR "FAIL: no rank died in a job (the map did not run?)")
endif()
if(out MATCHES "sm_mpi_map returned SM_OK")
  message(FATAL_ERROR "FAIL: a rank's sm_mpi_map succeeded although a rank had died in it")
endif()
message("OK: the launcher ended in ${took} s with status ${rc} after a rank died")
