# UDX: packet parser + stream state machine (two conns wired back to back, the fuzzer
# controls delivery, loss, duplication, crafted packets, time and application calls).
swarmdvm_fuzz(NAME fuzz_udx SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_udx.c LIBS dht common)
