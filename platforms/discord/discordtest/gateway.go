package discordtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11
)

// Gateway close codes.
const (
	closeNotAuthenticated     = 4003
	closeAuthenticationFailed = 4004
	closeDisallowedIntents    = 4014
)

type gwSession struct {
	id      string
	intents int
	seq     int64
	history []frame // every dispatch, for RESUME
	conn    *gwConn // nil while the bot is disconnected
}

type gwConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *gwConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *gwConn) closeWith(code int, text string) {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
}

type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

type gateway struct {
	mu         sync.Mutex
	closed     bool
	sessions   map[string]*gwSession
	current    *gwSession // the bot's most recent session
	conns      []*gwConn
	identifies int
	resumes    int
}

func (g *gateway) intentsOf() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.current == nil {
		return 0
	}
	return g.current.intents
}

// dispatch sends an event to the bot's session if its intents ask for it (intent 0: always). While the
// bot is disconnected the event waits in the session's history for a RESUME, as at Discord.
func (s *Server) dispatch(t string, intent int, d any) {
	raw, _ := json.Marshal(d)
	s.gw.mu.Lock()
	sess := s.gw.current
	if sess != nil && (intent == 0 || sess.intents&intent != 0) {
		s.sendLocked(sess, t, raw)
	}
	s.gw.mu.Unlock()
	s.notify()
}

// sendLocked numbers, records and (if connected) writes one dispatch. s.gw.mu must be held.
func (s *Server) sendLocked(sess *gwSession, t string, raw json.RawMessage) {
	sess.seq++
	seq := sess.seq
	f := frame{Op: opDispatch, D: raw, S: &seq, T: &t}
	sess.history = append(sess.history, f)
	if sess.conn != nil {
		if err := sess.conn.write(f); err != nil {
			_ = sess.conn.ws.Close()
			sess.conn = nil
		}
	}
}

// Connected reports whether the bot has a live, identified or resumed gateway connection.
func (s *Server) Connected() bool {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.current != nil && s.gw.current.conn != nil
}

// Intents is what the bot's latest IDENTIFY asked for.
func (s *Server) Intents() int { return s.gw.intentsOf() }

// Identifies and Resumes count the gateway handshakes of each kind.
func (s *Server) Identifies() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.identifies
}

// Resumes counts successful RESUMEs.
func (s *Server) Resumes() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.resumes
}

// DropGateway cuts the bot's gateway connection without a close frame, as a network failure would.
// The session stays resumable; events dispatched meanwhile are replayed on RESUME.
func (s *Server) DropGateway() {
	s.gw.mu.Lock()
	if sess := s.gw.current; sess != nil && sess.conn != nil {
		_ = sess.conn.ws.UnderlyingConn().Close()
		sess.conn = nil
	}
	s.gw.mu.Unlock()
	s.notify()
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("encoding") != "json" {
		http.Error(w, "encoding=json required by this fake", http.StatusBadRequest)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &gwConn{ws: ws}
	s.gw.mu.Lock()
	if s.gw.closed {
		s.gw.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.gw.conns = append(s.gw.conns, c)
	s.gw.mu.Unlock()
	defer s.notify()
	defer func() {
		s.gw.mu.Lock()
		for _, sess := range s.gw.sessions {
			if sess.conn == c {
				sess.conn = nil
			}
		}
		if cur := s.gw.current; cur != nil && cur.conn == c {
			cur.conn = nil
		}
		s.gw.mu.Unlock()
		_ = ws.Close()
	}()

	hello, _ := json.Marshal(map[string]any{"heartbeat_interval": s.opts.HeartbeatInterval.Milliseconds()})
	if c.write(frame{Op: opHello, D: hello}) != nil {
		return
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second)) // identify or resume promptly
	var sess *gwSession
	for {
		var f frame
		if err := ws.ReadJSON(&f); err != nil {
			var ce *websocket.CloseError
			// A client closing with 1000/1001 ends its session: it cannot be resumed any more.
			if sess != nil && asCloseError(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
				s.gw.mu.Lock()
				delete(s.gw.sessions, sess.id)
				s.gw.mu.Unlock()
			}
			return
		}
		switch f.Op {
		case opHeartbeat:
			_ = ws.SetReadDeadline(time.Now().Add(s.opts.HeartbeatInterval * 3 / 2))
			if c.write(frame{Op: opHeartbeatACK, D: json.RawMessage("null")}) != nil {
				return
			}
		case opIdentify:
			var id struct {
				Token   string `json:"token"`
				Intents int    `json:"intents"`
			}
			_ = json.Unmarshal(f.D, &id)
			if strings.TrimPrefix(id.Token, "Bot ") != s.opts.Token {
				c.closeWith(closeAuthenticationFailed, "Authentication failed.")
				return
			}
			if id.Intents&privilegedIntentsMask&^s.opts.PrivilegedIntents != 0 {
				c.closeWith(closeDisallowedIntents, "Disallowed intent(s).")
				return
			}
			_ = ws.SetReadDeadline(time.Now().Add(s.opts.HeartbeatInterval * 3 / 2))
			sess = &gwSession{id: randomHex(16), intents: id.Intents, conn: c}
			s.mu.Lock()
			var guilds []map[string]any
			for g := range s.guilds {
				guilds = append(guilds, map[string]any{"id": g, "unavailable": true})
			}
			s.mu.Unlock()
			ready, _ := json.Marshal(map[string]any{
				"v": 9, "user": s.Bot, "session_id": sess.id, "resume_gateway_url": s.gatewayURL(),
				"guilds": guilds, "private_channels": []any{}, "shard": []int{0, 1},
				"application": map[string]any{"id": s.Bot.ID, "flags": 0},
			})
			s.gw.mu.Lock()
			if old := s.gw.current; old != nil && old.conn != nil && old.conn != c {
				_ = old.conn.ws.Close()
				old.conn = nil
			}
			s.gw.sessions[sess.id] = sess
			s.gw.current = sess
			s.gw.identifies++
			s.sendLocked(sess, "READY", ready)
			s.gw.mu.Unlock()
			s.notify()
		case opResume:
			var rs struct {
				Token     string `json:"token"`
				SessionID string `json:"session_id"`
				Seq       int64  `json:"seq"`
			}
			_ = json.Unmarshal(f.D, &rs)
			s.gw.mu.Lock()
			old := s.gw.sessions[rs.SessionID]
			if strings.TrimPrefix(rs.Token, "Bot ") != s.opts.Token || old == nil {
				s.gw.mu.Unlock()
				if c.write(frame{Op: opInvalidSession, D: json.RawMessage("false")}) != nil {
					return
				}
				continue
			}
			_ = ws.SetReadDeadline(time.Now().Add(s.opts.HeartbeatInterval * 3 / 2))
			if old.conn != nil && old.conn != c {
				_ = old.conn.ws.Close()
			}
			sess = old
			sess.conn = c
			s.gw.current = sess
			s.gw.resumes++
			// Replay what the client missed, in order, then confirm with RESUMED, as Discord does.
			ok := true
			for _, h := range sess.history {
				if *h.S > rs.Seq {
					if c.write(h) != nil {
						ok = false
						break
					}
				}
			}
			if ok {
				s.sendLocked(sess, "RESUMED", json.RawMessage("{}"))
			}
			s.gw.mu.Unlock()
			s.notify()
		default:
			if sess == nil {
				c.closeWith(closeNotAuthenticated, "Not authenticated.")
				return
			}
		}
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}
