"""DynamoDB semantics: values, limits, key codec, expressions, capacity math and errors.

Pure code: imports nothing of ddb's and does no I/O, reads no clock and draws no randomness.
"""
