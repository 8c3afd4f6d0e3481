# secret-stream core: framing, header, decryption, standalone handshake
# (scripts/fuzz.sh secretstream 60).
if(TARGET dht)
  swarmdvm_fuzz(NAME fuzz_secretstream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_secretstream.c
                LIBS dht common)
endif()
