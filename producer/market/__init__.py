"""producer.market: closed Yahoo bars to market.bars, resuming from its watermarks."""
