package main

import (
	"flag"

	"github.com/jmoiron/sqlx"
)

type sqlxDB = sqlx.DB

func flagSet(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ContinueOnError) }
