package main

import "github.com/jmoiron/sqlx"

type sqlxDB = sqlx.DB
