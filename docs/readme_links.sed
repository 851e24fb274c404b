# Doxygen input filter for README.md (docs/Doxyfile, FILTER_PATTERNS). README's links to files
# of the repository ([text](docs/guide.md#10-tls)) would be read by Doxygen as references to
# pages of the reference, which do not exist, one warning each; they become plain HTML links
# (images: <img>) to the file in the source tree instead, relative to
# build/docs/html/index.html. Links within README ([text](#section)) become their text, as
# Doxygen does not know GitHub's heading anchors. Links with a scheme (https://...) contain a
# colon and are left alone, and so are fenced code blocks (a lambda's "[&loop](int fd" is not
# a link). Lines keep their numbers.
/^```/,/^```/b
s#!\[([^]]*)\]\(([^):]+)\)#<img src="../../../\2" alt="\1">#g
s#\[([^]]*)\]\(\#[^)]*\)#\1#g
s#\[([^]]*)\]\(([^):]+)\)#<a href="../../../\2">\1</a>#g
