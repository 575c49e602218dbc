package api

import "strings"

// bearerToken reads the credentials of an Authorization header with the
// Bearer scheme. Schemes are case-insensitive (RFC 7235 §2.1) and clients
// differ in the white space they put around the token, so "bearer  tok "
// is read like "Bearer tok".
func bearerToken(header string) (string, bool) {
	header = strings.TrimLeft(header, " \t")
	i := strings.IndexAny(header, " \t")
	if i < 0 || !strings.EqualFold(header[:i], "Bearer") {
		return "", false
	}
	token := strings.Trim(header[i:], " \t")
	return token, token != ""
}
