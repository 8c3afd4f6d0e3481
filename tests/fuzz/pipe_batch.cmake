# Pipeline batcher (agent/agent_pipe_batch): sizes, boundaries and the concatenation invariant.
swarmdvm_fuzz(NAME fuzz_pipe_batch SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_pipe_batch.c LIBS agent common)
