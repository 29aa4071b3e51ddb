-- A symbol's news since a moment, newest first, with its VADER sentiment in [-1, 1].
SELECT published_at, headline, source, round(sentiment::numeric, 3) AS sentiment
FROM news_by_symbol
WHERE symbol = :'symbol' AND published_at >= :'since'
ORDER BY published_at DESC, article_id;
