CREATE TABLE orders (
    id text PRIMARY KEY,
    total numeric NOT NULL,
    customer text NOT NULL
);
