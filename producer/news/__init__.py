"""producer.news: Finnhub company and market news with sentiment to news.articles."""
