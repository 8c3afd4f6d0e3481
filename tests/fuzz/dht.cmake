# DHT decoders: dht-rpc messages, LOOKUP replies, ANNOUNCE values, peer records, and a node
# core fed arbitrary datagrams (run with: FUZZ_BUILD_DIR=build/fuzz-dht scripts/fuzz.sh dht 60).
swarmdvm_fuzz(NAME fuzz_dht SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_dht.c LIBS dht common)
