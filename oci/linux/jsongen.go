package linux

import (
	"github.com/mailru/easyjson/jlexer"
	"github.com/mailru/easyjson/jwriter"
)

//go:generate ./generate.sh

// easyjsonMarshaler and easyjsonUnmarshaler are easyjson.Marshaler and
// easyjson.Unmarshaler, for the generated code (see generate.sh).
type (
	easyjsonMarshaler   interface{ MarshalEasyJSON(w *jwriter.Writer) }
	easyjsonUnmarshaler interface{ UnmarshalEasyJSON(l *jlexer.Lexer) }
)
