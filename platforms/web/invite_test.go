package web

import (
	"log/slog"
	"testing"
)

func TestInviteLink(t *testing.T) {
	cases := []struct {
		public, listen, want string
	}{
		{"https://chat.example.org/", "127.0.0.1:8080", "https://chat.example.org/#join=T"},
		{"", "127.0.0.1:34567", "http://127.0.0.1:34567/#join=T"},
		{"", "0.0.0.0:8080", "http://localhost:8080/#join=T"},
		{"", "[::]:8080", "http://localhost:8080/#join=T"},
		{"", ":8080", "http://localhost:8080/#join=T"},
		{"", "", ""},
	}
	for _, c := range cases {
		var opts []Option
		if c.listen != "" {
			opts = append(opts, WithListenAddr(c.listen))
		}
		p, err := New(Config{Enabled: true, PublicURL: c.public}, slog.New(slog.DiscardHandler), opts...)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.InviteLink("T")
		if got != c.want || ok != (c.want != "") {
			t.Errorf("public %q listen %q: %q %v, want %q", c.public, c.listen, got, ok, c.want)
		}
	}
}
