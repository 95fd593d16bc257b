"""The targets the issues set: reported as PASS/MISS, never enforced."""

THROUGHPUT_RATIO = 0.8  # Decide c=16 / floor c=16
P50_OVERHEAD_MS = 0.25  # Decide p50 c=1 − floor p50 c=1
BATCH_DECISIONS = 25_000.0  # DecideBatch decisions/s
BYTES_PER_PENDING = 1.5 * 1024  # 1.5 KiB of server RSS per pending event
LEARNING_RATIO = 0.98  # service progressive reward / raw VW's
