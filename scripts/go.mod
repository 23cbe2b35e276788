module github.com/cart-cqrs/cart/scripts

go 1.26.8

require github.com/cart-cqrs/cart/pkg v0.0.0

require (
	github.com/cart-cqrs/cart/migrations v0.0.0
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace github.com/cart-cqrs/cart/pkg => ../pkg

replace github.com/cart-cqrs/cart/migrations => ../migrations
