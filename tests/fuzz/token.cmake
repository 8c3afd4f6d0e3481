# cashuA/cashuB token decoders (and the P2PK secret parser on decoded secrets).
swarmdvm_fuzz(NAME fuzz_token SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_token.c LIBS cashu common)
