# Doxygen input filter for README.md (docs/Doxyfile, FILTER_PATTERNS). README's links to files
# of the repository ([text](docs/guide.md#10-tls)) would be read by Doxygen as references to
# pages of the reference, which do not exist, one warning each; they become plain HTML links
# to the file in the source tree instead, relative to build/docs/html/index.html. Links with a
# scheme (https://...) contain a colon and are left alone, and so are fenced code blocks
# (a lambda's "[&loop](int fd" is not a link). Lines keep their numbers.
/^```/,/^```/b
s#\[([^]]*)\]\(([^):]+)\)#<a href="../../../\2">\1</a>#g
