"""Click logs as weak labels (#17): reading impression/click logs, a position-based click model
that corrects position bias, and the click grade a (query, document) pair gets from it."""
