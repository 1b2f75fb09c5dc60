package bridge

// StripInPlace is stripInPlace, for the fuzz test in bridge_test.
var StripInPlace = stripInPlace

// MediaType is mediaType, for its table test in bridge_test.
var MediaType = mediaType
