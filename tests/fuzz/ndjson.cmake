# NDJSON framer + message decoder with round-trip checks (protocol/).
swarmdvm_fuzz(NAME fuzz_ndjson SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_ndjson.c LIBS protocol common)
