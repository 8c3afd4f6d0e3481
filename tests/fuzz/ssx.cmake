# secretstream message crypto (dht_ssx) against libsodium's crypto_secretstream, both
# backends (scripts/fuzz.sh ssx 60).
if(TARGET dht)
  swarmdvm_fuzz(NAME fuzz_ssx SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_ssx.c LIBS dht common)
endif()
