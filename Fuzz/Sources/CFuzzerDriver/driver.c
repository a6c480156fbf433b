/* Only the header matters: the function is libFuzzer's. */
