"""The 0-3 relevance scale, written once (plain Python: formats, statistics and training read it too).

0 irrelevant, 1 marginal, 2 relevant, 3 highly relevant (TREC Deep Learning's scale).
"""
GRADE_MIN, GRADE_MAX = 0, 3
GRADES = tuple(range(GRADE_MIN, GRADE_MAX + 1))
GRADE_LABELS = {
    0: ("irrelevant", "不相关"),
    1: ("marginal", "低相关"),
    2: ("relevant", "中等相关"),
    3: ("highly relevant", "高相关"),
}
