# tests/fakes/fakes.mk — the fake provider servers, included by the top
# Makefile.  Builds build/fakes/pgpush-fake (the servers) and
# build/fakes/fake-jwt (mints test JWTs), reusing $(CC), $(CFLAGS),
# $(LDFLAGS), $(LDLIBS) and $(FLAGS_FILE) from the top Makefile.
#
#   make fakes              build both
#   make fakes-test         build, then prove tests/fakes/t/

FAKES_PKGS   := libnghttp2
FAKES_CFLAGS := $(shell pkg-config --cflags $(FAKES_PKGS) 2>/dev/null)
FAKES_LIBS   := $(shell pkg-config --libs $(FAKES_PKGS) 2>/dev/null)

FAKES_TOOL_SRCS := tests/fakes/fake_jwt_tool.c
FAKES_SRCS := $(filter-out $(FAKES_TOOL_SRCS),$(wildcard tests/fakes/fake_*.c))
FAKES_OBJS := $(FAKES_SRCS:tests/fakes/%.c=$(BUILD)/fakes/%.o)
FAKES_SERVER := $(BUILD)/fakes/pgpush-fake
FAKES_JWT    := $(BUILD)/fakes/fake-jwt
FAKES_BINS   := $(FAKES_SERVER) $(FAKES_JWT)

$(BUILD)/fakes/%.o: tests/fakes/%.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FAKES_CFLAGS) -c -o $@ $<

$(FAKES_SERVER): $(FAKES_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(FAKES_LIBS) $(LDLIBS)

$(FAKES_JWT): $(BUILD)/fakes/fake_jwt_tool.o $(BUILD)/fakes/fake_jwt.o \
		$(BUILD)/fakes/fake_util.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: fakes fakes-test
fakes: $(FAKES_BINS)

fakes-test: $(FAKES_BINS)
	prove tests/fakes/t/
