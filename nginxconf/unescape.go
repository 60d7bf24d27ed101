package nginxconf

// unescapeWord turns the raw bytes of one word (without its surrounding
// quotes) into its value the way nginx's ngx_conf_read_token() does, for
// quoted and unquoted words alike: \" \' \\ lose the backslash, \t \r \n
// become TAB, CR and LF, and any other backslash stays as written
// (unquoted `a\ b` is one word whose value is `a\ b`).
func unescapeWord(raw []byte) string {
	if !hasBackslash(raw) {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			switch raw[i+1] {
			case '"', '\'', '\\':
				out = append(out, raw[i+1])
				i++
				continue
			case 't':
				out = append(out, '\t')
				i++
				continue
			case 'r':
				out = append(out, '\r')
				i++
				continue
			case 'n':
				out = append(out, '\n')
				i++
				continue
			}
		}
		out = append(out, c)
	}
	return string(out)
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}
