"""bert4keras `snippets`: data utilities (padding, truncation, text splitting,
parallel mapping, `DataGenerator`) and decoding helpers (`ViterbiDecoder`)."""
