SELECT id, total, customer FROM orders ORDER BY id
