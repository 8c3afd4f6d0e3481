# LLM driver stream parsers (agent/agent_llm_core.c): bytes from a backend are untrusted.
swarmdvm_fuzz(NAME fuzz_llm_stream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_llm_stream.c LIBS agent common)
