"""Model engines: llama.cpp in process, and the packaged default models."""
