# Provider and customer job state machines driven by a fuzzed script, with invariants.
swarmdvm_fuzz(NAME fuzz_job SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_job.c LIBS protocol common)
