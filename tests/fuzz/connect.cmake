# Connect payloads: handshake payload, PEER_HANDSHAKE / PEER_HOLEPUNCH values and the
# holepunch payload (decode, re-encode, decode again must agree) + NAT classification.
swarmdvm_fuzz(NAME fuzz_connect SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_connect.c LIBS dht common)
