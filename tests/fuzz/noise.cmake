# Noise IK/XX state machine and compact-encoding reader (scripts/fuzz.sh noise 60).
if(TARGET dht)
  swarmdvm_fuzz(NAME fuzz_noise SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_noise.c LIBS dht common)
endif()
