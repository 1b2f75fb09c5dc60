//go:build !goolm

package matrix

// kumo uses mautrix's pure-Go olm. Without -tags goolm mautrix compiles libolm through cgo, which
// fails later and less clearly (olm/olm.h missing); this import makes the build stop at once.
import _ "github.com/kumo-chat/kumo/platforms/matrix/internal/build_with_-tags_goolm"
